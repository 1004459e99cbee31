<?xml version="1.0" encoding="UTF-8"?>
<!-- Court CourtMessage -> Case Exchange standard v1. Name = FamilyName + GivenName (no space, Chinese order). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    exclude-result-prefixes="m">
  <xsl:template match="/CourtMessage">
    <xsl:variable name="h" select="Header"/>
    <CaseRecord>
      <xsl:attribute name="version"><xsl:choose>
        <xsl:when test="Body/Sentences or Body/Instruments/Instrument/PartyRef or Body/Instruments/Instrument/Disposition or Body/Chronology/Entry/At">1.1</xsl:when>
        <xsl:otherwise>1.0</xsl:otherwise></xsl:choose></xsl:attribute>
      <CaseNumber><xsl:value-of select="$h/Case/Identification/UnifiedCaseNo"/></CaseNumber>
      <Stage><xsl:value-of select="m:to-standard('stages', $h/Case/Procedure/StageCode)"/></Stage>
      <Action><xsl:value-of select="m:to-standard('actions', $h/Case/Procedure/ActionCode)"/></Action>
      <Sender><xsl:value-of select="$h/Routing/From/AgencyCode"/></Sender>
      <xsl:for-each select="$h/Routing/To"><Receiver><xsl:value-of select="AgencyCode"/></Receiver></xsl:for-each>
      <xsl:if test="$h/Timestamp"><SentAt><xsl:value-of select="$h/Timestamp"/></SentAt></xsl:if>
      <xsl:if test="$h/Case/Identification/LocalCaseNo"><LocalNumbers><xsl:for-each select="$h/Case/Identification/LocalCaseNo">
        <LocalNumber agency="{@agency}"><xsl:value-of select="."/></LocalNumber></xsl:for-each></LocalNumbers></xsl:if>
      <xsl:apply-templates select="Body/*"/>
    </CaseRecord>
  </xsl:template>
  <xsl:template match="Parties"><Persons><xsl:for-each select="Party"><xsl:variable name="i" select="Identity"/>
    <Person id="{@id}"><Role><xsl:value-of select="m:to-standard('roles', Capacity/Code)"/></Role>
      <Name><xsl:value-of select="concat($i/PersonName/FamilyName, $i/PersonName/GivenName)"/></Name>
      <xsl:if test="$i/Identifiers"><ResidentId><xsl:value-of select="$i/Identifiers/ResidentIdentityCard"/></ResidentId></xsl:if>
      <xsl:if test="$i/Demographics/DateOfBirth"><BirthDate><xsl:value-of select="$i/Demographics/DateOfBirth"/></BirthDate></xsl:if>
      <xsl:if test="$i/Demographics/Sex"><Gender><xsl:value-of select="m:to-standard('genders', $i/Demographics/Sex)"/></Gender></xsl:if>
      <xsl:if test="$i/Contact"><Address><xsl:value-of select="$i/Contact/ResidenceAddress"/></Address></xsl:if></Person>
  </xsl:for-each></Persons></xsl:template>
  <xsl:template match="Charges"><Offences><xsl:for-each select="Charge">
    <Offence><Code><xsl:value-of select="m:to-standard('offences', Statute/Code)"/></Code>
      <xsl:if test="PartyRef"><PersonRef><xsl:value-of select="PartyRef"/></PersonRef></xsl:if>
      <xsl:if test="Particulars"><Description><xsl:value-of select="Particulars"/></Description></xsl:if></Offence>
  </xsl:for-each></Offences></xsl:template>
  <xsl:template match="Sentences"><Sentences><xsl:for-each select="Sentence">
    <Sentence><PersonRef><xsl:value-of select="PartyRef"/></PersonRef>
      <Penalty><xsl:value-of select="m:to-standard('penalties', Penalty/Code)"/></Penalty>
      <xsl:if test="TermMonths"><TermMonths><xsl:value-of select="TermMonths"/></TermMonths></xsl:if>
      <xsl:if test="Suspended"><Suspended><xsl:value-of select="Suspended"/></Suspended></xsl:if>
      <xsl:if test="ProbationMonths"><ProbationMonths><xsl:value-of select="ProbationMonths"/></ProbationMonths></xsl:if>
      <xsl:if test="Wording"><Text><xsl:value-of select="Wording"/></Text></xsl:if>
      <xsl:if test="InstrumentNo"><DocumentNumber><xsl:value-of select="InstrumentNo"/></DocumentNumber></xsl:if></Sentence>
  </xsl:for-each></Sentences></xsl:template>
  <xsl:template match="Chronology"><Events><xsl:for-each select="Entry">
    <Event><Type><xsl:value-of select="m:to-standard('events', Kind/Code)"/></Type><Date><xsl:value-of select="On"/></Date>
      <xsl:if test="At"><Time><xsl:value-of select="At"/></Time></xsl:if>
      <xsl:if test="PartyRef"><PersonRef><xsl:value-of select="PartyRef"/></PersonRef></xsl:if>
      <xsl:if test="Remark"><Note><xsl:value-of select="Remark"/></Note></xsl:if></Event>
  </xsl:for-each></Events></xsl:template>
  <xsl:template match="Instruments"><Documents><xsl:for-each select="Instrument">
    <Document><Type><xsl:value-of select="m:to-standard('doctypes', Classification/Code)"/></Type>
      <Number><xsl:value-of select="Reference/Number"/></Number><Date><xsl:value-of select="Reference/IssuedOn"/></Date>
      <Issuer><xsl:value-of select="Reference/IssuedBy"/></Issuer>
      <xsl:if test="Title"><Title><xsl:value-of select="Title"/></Title></xsl:if>
      <xsl:if test="FileRef"><FileRef><xsl:value-of select="FileRef"/></FileRef></xsl:if>
      <xsl:if test="Seal"><Signature algorithm="{Seal/@algorithm}" keyId="{Seal/@keyId}"><xsl:value-of select="Seal"/></Signature></xsl:if>
      <xsl:for-each select="PartyRef"><PersonRef><xsl:value-of select="."/></PersonRef></xsl:for-each>
      <xsl:if test="Disposition"><Outcome><xsl:value-of select="m:to-standard('outcomes', Disposition/Code)"/></Outcome></xsl:if></Document>
  </xsl:for-each></Documents></xsl:template>
  <xsl:template match="Exhibits"><Evidence><xsl:for-each select="Exhibit">
    <Item><Kind><xsl:value-of select="m:to-standard('evidence', Kind/Code)"/></Kind>
      <xsl:if test="Description"><Description><xsl:value-of select="Description"/></Description></xsl:if>
      <xsl:if test="Measurement"><Value unit="{Measurement/@unit}"><xsl:value-of select="Measurement"/></Value></xsl:if>
      <xsl:if test="FileRef"><FileRef><xsl:value-of select="FileRef"/></FileRef></xsl:if></Item>
  </xsl:for-each></Evidence></xsl:template>
  <xsl:template match="Files"><Dossier><xsl:for-each select="File">
    <File id="{@id}"><Name><xsl:value-of select="Name"/></Name><MediaType><xsl:value-of select="Type"/></MediaType>
      <Size><xsl:value-of select="Bytes"/></Size><SHA256><xsl:value-of select="Digest"/></SHA256></File>
  </xsl:for-each></Dossier></xsl:template>
  <xsl:template match="Notices"/>
</xsl:stylesheet>
