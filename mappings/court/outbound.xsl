<?xml version="1.0" encoding="UTF-8"?>
<!-- Case Exchange standard v1 -> court CourtMessage; DefectNotice -> RejectionNotice.
     Names are split as the court system stores them: the family name is the first character, or the first two
     when they are one of the compound surnames (复姓) listed in $compound-surnames and a given name follows. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:c="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    exclude-result-prefixes="c m">
  <!-- Compound surnames (复姓), each between bars; add one here if the court's records need it. -->
  <xsl:variable name="compound-surnames" select="concat('|欧阳|太史|端木|上官|司马|东方|独孤|南宫|万俟|闻人|夏侯|诸葛|尉迟|公羊|',
    '赫连|澹台|皇甫|宗政|濮阳|公冶|太叔|申屠|公孙|慕容|仲孙|钟离|长孙|宇文|司徒|鲜于|司空|闾丘|子车|亓官|司寇|巫马|公西|',
    '颛孙|壤驷|公良|漆雕|乐正|宰父|谷梁|拓跋|夹谷|轩辕|令狐|段干|百里|呼延|东郭|南门|羊舌|微生|梁丘|左丘|东门|西门|第五|',
    '南荣|即墨|达奚|褚师|东里|')"/>
  <xsl:template match="c:Warning|c:Defect" mode="finding">
    <RuleId><xsl:value-of select="c:Rule"/></RuleId><Level><xsl:value-of select="c:Severity"/></Level>
    <Text><Chinese><xsl:value-of select="c:MessageZh"/></Chinese><English><xsl:value-of select="c:MessageEn"/></English></Text>
    <xsl:if test="c:Location"><Where><Path><xsl:value-of select="c:Location"/></Path>
      <xsl:if test="c:Line"><Line><xsl:value-of select="c:Line"/></Line></xsl:if></Where></xsl:if>
  </xsl:template>
  <xsl:template match="/c:CaseRecord">
    <CourtMessage schemaVersion="3.1">
      <Header>
        <Case>
          <Identification><UnifiedCaseNo><xsl:value-of select="c:CaseNumber"/></UnifiedCaseNo>
            <xsl:for-each select="c:LocalNumbers/c:LocalNumber"><LocalCaseNo agency="{@agency}"><xsl:value-of select="."/></LocalCaseNo></xsl:for-each>
          </Identification>
          <Procedure><StageCode><xsl:value-of select="m:to-legacy('stages', c:Stage)"/></StageCode>
            <ActionCode><xsl:value-of select="m:to-legacy('actions', c:Action)"/></ActionCode></Procedure>
        </Case>
        <Routing><From><AgencyCode><xsl:value-of select="c:Sender"/></AgencyCode></From>
          <xsl:for-each select="c:Receiver"><To><AgencyCode><xsl:value-of select="."/></AgencyCode></To></xsl:for-each></Routing>
        <xsl:if test="c:SentAt"><Timestamp><xsl:value-of select="c:SentAt"/></Timestamp></xsl:if>
      </Header>
      <Body>
        <xsl:if test="c:Persons"><Parties><xsl:for-each select="c:Persons/c:Person">
          <Party id="{@id}"><Capacity><Code><xsl:value-of select="m:to-legacy('roles', c:Role)"/></Code></Capacity>
            <Identity>
              <xsl:variable name="family" select="1 + (string-length(c:Name) &gt; 2
                  and contains($compound-surnames, concat('|', substring(c:Name, 1, 2), '|')))"/>
              <PersonName><FamilyName><xsl:value-of select="substring(c:Name, 1, $family)"/></FamilyName>
                <GivenName><xsl:value-of select="substring(c:Name, $family + 1)"/></GivenName></PersonName>
              <xsl:if test="c:ResidentId"><Identifiers><ResidentIdentityCard><xsl:value-of select="c:ResidentId"/></ResidentIdentityCard></Identifiers></xsl:if>
              <xsl:if test="c:BirthDate or c:Gender"><Demographics>
                <xsl:if test="c:BirthDate"><DateOfBirth><xsl:value-of select="c:BirthDate"/></DateOfBirth></xsl:if>
                <xsl:if test="c:Gender"><Sex><xsl:value-of select="m:to-legacy('genders', c:Gender)"/></Sex></xsl:if></Demographics></xsl:if>
              <xsl:if test="c:Address"><Contact><ResidenceAddress><xsl:value-of select="c:Address"/></ResidenceAddress></Contact></xsl:if>
            </Identity></Party>
        </xsl:for-each></Parties></xsl:if>
        <xsl:if test="c:Offences"><Charges><xsl:for-each select="c:Offences/c:Offence">
          <Charge><Statute><Code><xsl:value-of select="m:to-legacy('offences', c:Code)"/></Code></Statute>
            <xsl:if test="c:PersonRef"><PartyRef><xsl:value-of select="c:PersonRef"/></PartyRef></xsl:if>
            <xsl:if test="c:Description"><Particulars><xsl:value-of select="c:Description"/></Particulars></xsl:if></Charge>
        </xsl:for-each></Charges></xsl:if>
        <xsl:if test="c:Sentences"><Sentences><xsl:for-each select="c:Sentences/c:Sentence">
          <Sentence><PartyRef><xsl:value-of select="c:PersonRef"/></PartyRef>
            <Penalty><Code><xsl:value-of select="m:to-legacy('penalties', c:Penalty)"/></Code></Penalty>
            <xsl:if test="c:TermMonths"><TermMonths><xsl:value-of select="c:TermMonths"/></TermMonths></xsl:if>
            <xsl:if test="c:Suspended"><Suspended><xsl:value-of select="c:Suspended"/></Suspended></xsl:if>
            <xsl:if test="c:ProbationMonths"><ProbationMonths><xsl:value-of select="c:ProbationMonths"/></ProbationMonths></xsl:if>
            <xsl:if test="c:Text"><Wording><xsl:value-of select="c:Text"/></Wording></xsl:if>
            <xsl:if test="c:DocumentNumber"><InstrumentNo><xsl:value-of select="c:DocumentNumber"/></InstrumentNo></xsl:if></Sentence>
        </xsl:for-each></Sentences></xsl:if>
        <xsl:if test="c:Events"><Chronology><xsl:for-each select="c:Events/c:Event">
          <Entry><Kind><Code><xsl:value-of select="m:to-legacy('events', c:Type)"/></Code></Kind><On><xsl:value-of select="c:Date"/></On>
            <xsl:if test="c:Time"><At><xsl:value-of select="c:Time"/></At></xsl:if>
            <xsl:if test="c:PersonRef"><PartyRef><xsl:value-of select="c:PersonRef"/></PartyRef></xsl:if>
            <xsl:if test="c:Note"><Remark><xsl:value-of select="c:Note"/></Remark></xsl:if></Entry>
        </xsl:for-each></Chronology></xsl:if>
        <xsl:if test="c:Documents"><Instruments><xsl:for-each select="c:Documents/c:Document">
          <Instrument><Classification><Code><xsl:value-of select="m:to-legacy('doctypes', c:Type)"/></Code></Classification>
            <Reference><Number><xsl:value-of select="c:Number"/></Number><IssuedOn><xsl:value-of select="c:Date"/></IssuedOn>
              <IssuedBy><xsl:value-of select="c:Issuer"/></IssuedBy></Reference>
            <xsl:if test="c:Title"><Title><xsl:value-of select="c:Title"/></Title></xsl:if>
            <xsl:if test="c:FileRef"><FileRef><xsl:value-of select="c:FileRef"/></FileRef></xsl:if>
            <xsl:if test="c:Signature"><Seal algorithm="{c:Signature/@algorithm}" keyId="{c:Signature/@keyId}"><xsl:value-of select="c:Signature"/></Seal></xsl:if>
            <xsl:for-each select="c:PersonRef"><PartyRef><xsl:value-of select="."/></PartyRef></xsl:for-each>
            <xsl:if test="c:Outcome"><Disposition><Code><xsl:value-of select="m:to-legacy('outcomes', c:Outcome)"/></Code></Disposition></xsl:if></Instrument>
        </xsl:for-each></Instruments></xsl:if>
        <xsl:if test="c:Evidence"><Exhibits><xsl:for-each select="c:Evidence/c:Item">
          <Exhibit><Kind><Code><xsl:value-of select="m:to-legacy('evidence', c:Kind)"/></Code></Kind>
            <xsl:if test="c:Description"><Description><xsl:value-of select="c:Description"/></Description></xsl:if>
            <xsl:if test="c:Value"><Measurement unit="{c:Value/@unit}"><xsl:value-of select="c:Value"/></Measurement></xsl:if>
            <xsl:if test="c:FileRef"><FileRef><xsl:value-of select="c:FileRef"/></FileRef></xsl:if></Exhibit>
        </xsl:for-each></Exhibits></xsl:if>
        <xsl:if test="c:Dossier"><Files><xsl:for-each select="c:Dossier/c:File">
          <File id="{@id}"><Name><xsl:value-of select="c:Name"/></Name><Type><xsl:value-of select="c:MediaType"/></Type>
            <Bytes><xsl:value-of select="c:Size"/></Bytes><Digest algorithm="SHA-256"><xsl:value-of select="c:SHA256"/></Digest></File>
        </xsl:for-each></Files></xsl:if>
        <xsl:if test="c:Warnings"><Notices><xsl:for-each select="c:Warnings/c:Warning">
          <Notice><xsl:apply-templates select="." mode="finding"/></Notice></xsl:for-each></Notices></xsl:if>
      </Body>
    </CourtMessage>
  </xsl:template>
  <xsl:template match="/c:DefectNotice">
    <RejectionNotice>
      <Regarding><MessageId><xsl:value-of select="c:OriginalMessageId"/></MessageId>
        <xsl:if test="c:CaseNumber"><UnifiedCaseNo><xsl:value-of select="c:CaseNumber"/></UnifiedCaseNo></xsl:if></Regarding>
      <Addressee><AgencyCode><xsl:value-of select="c:Receiver"/></AgencyCode></Addressee>
      <IssuedAt><xsl:value-of select="c:IssuedAt"/></IssuedAt>
      <Findings><xsl:for-each select="c:Defect"><Finding><xsl:apply-templates select="." mode="finding"/></Finding></xsl:for-each></Findings>
    </RejectionNotice>
  </xsl:template>
</xsl:stylesheet>
